// A worker thread of flanneld's UDP backend: runs one direction of the
// datapath (see ../flannel-udp-datapath.ts) until the agent sets the stop flag.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { decapLoop, encapLoop, type RemoteRoute } from '../udp-datapath.js';

export interface WorkerData {
  role: 'encap' | 'decap';
  tun: number;
  sock: number;
  ctl: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

const data = workerData as WorkerData;
const routes = (): RemoteRoute[] | undefined => {
  let latest: RemoteRoute[] | undefined;
  for (let m = receiveMessageOnPort(parentPort!); m; m = receiveMessageOnPort(parentPort!)) latest = m.message as RemoteRoute[];
  return latest;
};
const opts = {
  tun: data.tun,
  sock: data.sock,
  ctl: new Int32Array(data.ctl),
  counters: new Float64Array(data.counters),
  routes,
  log: (msg: string) => console.log(`${new Date().toISOString()} udp ${data.role}: ${msg}`),
};
if (data.role === 'encap') encapLoop(opts);
else decapLoop(opts);
