#!/usr/bin/env node
// The CLI ships as bundled JavaScript (npm run build → dist/bundle/, see scripts/bundle.js) so
// `verdandi --help` starts fast; TypeScript is only loaded for roles and playbooks.
import '../dist/bundle/main.js';
