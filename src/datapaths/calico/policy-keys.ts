// What Calico's datastore holds for policy, under Calico's own key names:
// a WorkloadEndpoint per pod (its labels, address and host interface), a
// Profile per namespace (kns.<name>, the namespace's labels as pcns.<key>) and
// the Kubernetes NetworkPolicies (knp.default.<name>; kept in their Kubernetes
// form, which the node agent reads as Felix reads them in Kubernetes mode).
import type { KeyValue } from '../etcd/client.js';
import type { Cluster, Labels, PolicyNamespace, PolicyPod } from '../../policy/model.js';
import { networkPolicySchema, type NetworkPolicy } from '../../policy/schema.js';

const V3 = '/calico/resources/v3/projectcalico.org/';
export const WEPS_PREFIX = `${V3}workloadendpoints/`;
export const PROFILES_PREFIX = `${V3}profiles/`;
export const POLICIES_PREFIX = `${V3}networkpolicies/`;

export interface WorkloadEndpoint extends PolicyPod {
  node: string;
  /** The host side of the pod's veth: caliXXXXXXXXXXX. */
  iface: string;
}

export const wepKey = (w: Pick<WorkloadEndpoint, 'namespace' | 'node' | 'name'>) => `${WEPS_PREFIX}${w.namespace}/${w.node}-k8s-${w.name}-eth0`;
export const profileKey = (ns: string) => `${PROFILES_PREFIX}kns.${ns}`;
export const policyKey = (p: NetworkPolicy) => `${POLICIES_PREFIX}${p.metadata.namespace}/knp.default.${p.metadata.name}`;

export function wepResource(w: WorkloadEndpoint) {
  return {
    kind: 'WorkloadEndpoint',
    apiVersion: 'projectcalico.org/v3',
    metadata: {
      name: `${w.node}-k8s-${w.name}-eth0`,
      namespace: w.namespace,
      labels: { ...w.labels, 'projectcalico.org/namespace': w.namespace, 'projectcalico.org/orchestrator': 'k8s' },
    },
    spec: { orchestrator: 'k8s', node: w.node, pod: w.name, endpoint: 'eth0', interfaceName: w.iface, ipNetworks: [`${w.ip}/32`], profiles: [`kns.${w.namespace}`] },
  };
}

export function profileResource(ns: PolicyNamespace) {
  const labelsToApply = Object.fromEntries(Object.entries(ns.labels).map(([k, v]) => [`pcns.${k}`, v]));
  return { kind: 'Profile', apiVersion: 'projectcalico.org/v3', metadata: { name: `kns.${ns.name}` }, spec: { labelsToApply } };
}

function parseWep(kv: KeyValue): WorkloadEndpoint {
  const r = JSON.parse(kv.value) as ReturnType<typeof wepResource>;
  const labels: Labels = { ...r.metadata.labels };
  delete (labels as Record<string, string>)['projectcalico.org/namespace'];
  delete (labels as Record<string, string>)['projectcalico.org/orchestrator'];
  return { name: r.spec.pod, namespace: r.metadata.namespace, labels, ip: r.spec.ipNetworks[0].split('/')[0], node: r.spec.node, iface: r.spec.interfaceName };
}

function parseProfile(kv: KeyValue): PolicyNamespace {
  const r = JSON.parse(kv.value) as ReturnType<typeof profileResource>;
  const labels = Object.fromEntries(Object.entries(r.spec.labelsToApply ?? {}).map(([k, v]) => [k.replace(/^pcns\./, ''), v]));
  return { name: r.metadata.name.replace(/^kns\./, ''), labels };
}

/** The cluster as the datastore describes it (pods with their nodes and interfaces) and the policies in force. */
export function policyInputs(kvs: KeyValue[]): { cluster: Cluster & { pods: WorkloadEndpoint[] }; policies: NetworkPolicy[] } {
  const pods = kvs.filter((kv) => kv.key.startsWith(WEPS_PREFIX)).map(parseWep);
  const namespaces = kvs.filter((kv) => kv.key.startsWith(PROFILES_PREFIX)).map(parseProfile);
  // A record that is not a valid policy is left out (the loader checks lab files; etcd can hold anything).
  const policies = kvs
    .filter((kv) => kv.key.startsWith(POLICIES_PREFIX))
    .flatMap((kv) => {
      const r = networkPolicySchema.safeParse(JSON.parse(kv.value));
      return r.success ? [r.data] : [];
    });
  return { cluster: { pods: pods.sort((a, b) => a.name.localeCompare(b.name)), namespaces }, policies };
}
