// Workload recipes: what runs inside a pod. Real programs from Debian's
// packages, each pod with its own configuration and logs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { httpStatusIn } from '../net/sandboxes.js';
import type { Backend } from '../topologies/backend.js';
import type { PodRecord } from '../lab/state.js';
import { waitUntil } from '../util/wait.js';

export interface WorkloadInfo {
  /** The access log, as the host sees it (templates expose it as pods.<name>.accessLog). */
  accessLog: string;
}

export function nginxPaths(podDir: string) {
  return {
    conf: join(podDir, 'nginx.conf'),
    accessLog: join(podDir, 'log', 'access.log'),
    errorLog: join(podDir, 'log', 'error.log'),
  };
}

function nginxConf(pod: PodRecord, podDir: string): string {
  const p = nginxPaths(podDir);
  const tmp = join(podDir, 'tmp');
  return `# nginx for pod ${pod.name} on ${pod.node}
daemon off;
worker_processes 1;
pid ${join(podDir, 'nginx.pid')};
error_log ${p.errorLog} warn;
events { worker_connections 256; }
http {
  access_log ${p.accessLog};
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  server {
    listen 80;${pod.ip6 ? '\n    listen [::]:80;' : ''}
    # A second port, so that a NetworkPolicy can open one port and not the other.
    listen 81;
    # The readiness probe, kept out of the access log: the lesson's requests are all it holds.
    location = /ready {
      access_log off;
      default_type text/plain;
      return 200 "ready\\n";
    }
    location / {
      default_type text/plain;
      return 200 "pod ${pod.name} on ${pod.node}, address $server_addr\\n";
    }
  }
}
`;
}

/** Start nginx in the pod and wait until it answers on the pod's own address. */
export async function startNginx(backend: Backend, pod: PodRecord, podDir: string): Promise<WorkloadInfo> {
  const p = nginxPaths(podDir);
  // The pod's directory is where nginx runs: on its node (the same path on every backend).
  // Files written there make their directories; no process per pod for a mkdir.
  await backend.writeFile(pod.node, p.errorLog, '');
  await backend.writeFile(pod.node, join(podDir, 'tmp', '.nginx-temp'), '');
  await backend.writeFile(pod.node, p.conf, nginxConf(pod, podDir));
  await backend.podStart(pod.node, pod.name, 'nginx', ['nginx', '-e', p.errorLog, '-c', p.conf]);
  // Ready when a client in the same sandbox (as a sidecar container would be) gets an answer: a
  // socket made in the pod's namespace where this machine has it, else curl run in the pod.
  const netns = backend.netnsPath?.(pod.node, pod.name);
  const ready = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `http://${pod.ip}/ready`];
  const probe = netns && existsSync(netns)
    ? async () => (await httpStatusIn(netns, pod.ip!, 80, '/ready', 1000)) === 200
    : async () => (await backend.podExec(pod.node, pod.name, ready, { allowFailure: true })).stdout === '200';
  await waitUntil(probe, {
    timeoutMs: 3000,
    intervalMs: 30,
    what: `nginx in pod ${pod.name} to answer on ${pod.ip}:80`,
    hint: () => `see ${p.errorLog}`,
  });
  return { accessLog: p.accessLog };
}
