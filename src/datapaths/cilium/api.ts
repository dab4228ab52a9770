// The agent's API on its unix socket, as the CNI plugin and tests call it:
// PUT/GET/DELETE /v1/endpoint/<container id>, GET /v1/endpoint, GET /v1/healthz.
import { request } from 'node:http';

/** A pod's attachment on this node, as the CNI plugin reports it. */
export interface EndpointSpec {
  /** Pod IPv4 address (no prefix) */
  ip: string;
  /** Dual-stack: the pod's IPv6 address (no prefix) */
  ip6?: string;
  /** Host side of the veth pair: lxc… */
  ifname: string;
  ifindex: number;
  /** The pod's eth0 */
  mac: string;
  /** The lxc device's MAC */
  nodeMac: string;
  pod?: string;
}

export interface Endpoint extends EndpointSpec {
  id: string;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** The agent is not there (no socket, nobody listening): the caller decides whether that matters. */
export class AgentUnreachableError extends Error {}

export function callAgent(socket: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          /* keep the text */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new AgentUnreachableError(`the cilium agent is not running (no one listens on ${socket})`));
      else reject(e);
    });
    req.end(data);
  });
}
