import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
const { parseYaml } = await import('./dist/src/inventory/yaml-positions.js');
const { loadYaml } = await import('./dist/src/util/yaml.js');
const text = readFileSync('inventories/production.yml', 'utf8');
let t0 = performance.now(); for (let i = 0; i < 50; i++) parseYaml(text, 'x'); console.log('parseYaml', ((performance.now() - t0)/50).toFixed(2));
t0 = performance.now(); for (let i = 0; i < 50; i++) loadYaml(text, {}); console.log('loadYaml', ((performance.now() - t0)/50).toFixed(2));
t0 = performance.now(); for (let i = 0; i < 50; i++) yaml.load(text); console.log('yaml.load', ((performance.now() - t0)/50).toFixed(2));
t0 = performance.now(); for (let i = 0; i < 50; i++) yaml.load(text, {listener(){}}); console.log('yaml.load+listener', ((performance.now() - t0)/50).toFixed(2));
