// A device in under 30 lines: Device Client documents from ./handlers, plus one handler function.
// Run: node --import tsx examples/device.ts mqtt://127.0.0.1:1883 sensor-1 [token]
import { writeFile } from 'node:fs/promises';
import { createAgent } from '../agent/index.js'; // from the package: 'fleetjobs/agent'

const [url = 'mqtt://127.0.0.1:1883', thingName = 'sensor-1', token] = process.argv.slice(2);

const agent = createAgent({
  url,
  thingName,
  ...(token ? { credentials: { token } } : {}),
  handlerDir: './handlers',
  handlers: {
    // Job document: { "operation": "set-config", "config": { ... } }
    async 'set-config'(ctx) {
      await ctx.progress({ step: 'writing', percent: 50 });
      await writeFile('device-config.json', JSON.stringify(ctx.document.config), { signal: ctx.signal });
      return { applied: new Date().toISOString() };
    },
  },
});

agent.on('job:done', (job) => console.log(`${job.jobId} ${job.status}`));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void agent.stop());
}
await agent.start();
