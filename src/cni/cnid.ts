// The cnilab CNI daemon: serves every plugin to the shims of the network
// namespace it runs in, until SIGTERM or SIGINT. Started and stopped by PID
// (startDaemon / stopDaemon in daemon.ts).
import { runDir, serve } from './daemon.js';
import { PLUGINS } from './registry.js';
import { keepIpRunning } from '../net/ip.js';

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// One `ip` kept running for this namespace: the node side of an ADD then starts no process.
const stopIp = keepIpRunning();
const serving = await serve(PLUGINS, runDir(), log);
log(`cnilab daemon ${process.pid} serving ${Object.keys(PLUGINS).join(', ')} on ${serving.path}`);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await serving.close();
    stopIp();
    log(`cnilab daemon ${process.pid} stopped (${signal})`);
    process.exit(0);
  });
}
