const m = () => { global.gc(); global.gc(); return process.memoryUsage().heapUsed/1048576; };
const mini = process.env.MINI === '1';
const z = require(mini ? 'zod/mini' : 'zod');
const h0 = m(); const keep = [];
for (let i = 0; i < 200; i++) keep.push(z.object({ a: z.string(), b: mini ? z.optional(z.number()) : z.number().optional(), c: z.array(z.string()), d: z.boolean() }));
console.log(mini ? 'mini' : 'classic', 'heap per 200 objects (5 schemas each):', (m()-h0).toFixed(2), 'MiB');
