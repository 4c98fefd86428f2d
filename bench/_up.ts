import { up, down } from '../src/testhost/index.js';
const names = process.argv.slice(3);
const t = Date.now();
if (process.argv[2] === 'up') { await up(names, { fresh: true, progress: { start(){}, info(m:string){console.error(((Date.now()-t)/1000).toFixed(1), m)}, succeed(){}, fail(){} } as any }); }
else await down(names);
console.log(process.argv[2], names.join(','), ((Date.now()-t)/1000).toFixed(1), 's');
