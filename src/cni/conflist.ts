// A network configuration list (.conflist) as a runtime reads it from its
// configuration directory: the plugins of one network, called in order.

/** Where a node's runtime looks for its network configuration. */
export const CONF_DIR = '/etc/cni/net.d';

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}
