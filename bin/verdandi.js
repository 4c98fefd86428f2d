#!/usr/bin/env node
// The CLI ships as compiled JavaScript (npm run build → dist/) so `verdandi --help` starts fast;
// TypeScript is only loaded (through tsx) for roles and playbooks.
import '../dist/src/cli/main.js';
