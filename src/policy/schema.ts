// Kubernetes NetworkPolicy (networking.k8s.io/v1) as a lab file writes it,
// checked field by field with zod; what a schema cannot say (selectors that are
// well-formed but wrong, CIDRs, port ranges) is in validate.ts.
import { z } from 'zod';

/** A label key: an optional DNS prefix and "/", then a name of up to 63 characters. */
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length > 253 || !LABEL_PREFIX.test(prefix))) return false;
  return LABEL_NAME.test(name);
}

export const labelKey = z.string().refine(isLabelKey, { message: 'not a label key: a name of letters, digits, "-", "_", "." (at most 63), optionally after a DNS prefix and "/"' });
export const labelValue = z.string().max(63).regex(LABEL_VALUE, 'not a label value: letters, digits, "-", "_", "." (at most 63), starting and ending with a letter or digit');
export const labels = z.record(z.string(), labelValue).superRefine((l, ctx) => {
  for (const k of Object.keys(l)) if (!isLabelKey(k)) ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" is not a label key: a name of letters, digits, "-", "_", "." (at most 63), optionally after a DNS prefix and "/"` });
});

export const selectorOperators = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

export const labelSelector = z.strictObject({
  matchLabels: labels.optional(),
  matchExpressions: z
    .array(
      z
        .strictObject({ key: labelKey, operator: z.enum(selectorOperators), values: z.array(labelValue).optional() })
        .superRefine((e, ctx) => {
          const n = e.values?.length ?? 0;
          if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0) ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${e.operator} needs at least one value` });
          if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0) ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${e.operator} takes no values` });
        }),
    )
    .optional(),
});

export const protocols = ['TCP', 'UDP', 'SCTP'] as const;

export const policyPort = z
  .strictObject({
    protocol: z.enum(protocols).default('TCP'),
    /** A number; a named port (a string) is rejected in validate.ts with the reason. */
    port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]).optional(),
    endPort: z.number().int().min(1).max(65535).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.endPort === undefined) return;
    if (typeof p.port !== 'number') ctx.addIssue({ code: 'custom', path: ['endPort'], message: 'endPort needs a numeric port to start the range' });
    else if (p.endPort < p.port) ctx.addIssue({ code: 'custom', path: ['endPort'], message: `endPort ${p.endPort} is below port ${p.port}` });
  });

export const ipBlock = z.strictObject({ cidr: z.string(), except: z.array(z.string()).optional() });

export const policyPeer = z
  .strictObject({ podSelector: labelSelector.optional(), namespaceSelector: labelSelector.optional(), ipBlock: ipBlock.optional() })
  .superRefine((p, ctx) => {
    const selectors = p.podSelector !== undefined || p.namespaceSelector !== undefined;
    if (p.ipBlock && selectors) ctx.addIssue({ code: 'custom', path: ['ipBlock'], message: 'a peer is either an ipBlock or pod/namespace selectors, not both' });
    if (!p.ipBlock && !selectors) ctx.addIssue({ code: 'custom', message: 'a peer needs podSelector, namespaceSelector or ipBlock' });
  });

const ingressRule = z.strictObject({ from: z.array(policyPeer).optional(), ports: z.array(policyPort).optional() });
const egressRule = z.strictObject({ to: z.array(policyPeer).optional(), ports: z.array(policyPort).optional() });

export const networkPolicySchema = z.strictObject({
  apiVersion: z.literal('networking.k8s.io/v1').optional(),
  kind: z.literal('NetworkPolicy').optional(),
  metadata: z.strictObject({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'lower-case letters, digits, "-" and "."').max(253),
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'lower-case letters, digits and "-"').max(63).default('default'),
  }),
  spec: z.strictObject({
    podSelector: labelSelector,
    policyTypes: z.array(z.enum(['Ingress', 'Egress'])).optional(),
    ingress: z.array(ingressRule).optional(),
    egress: z.array(egressRule).optional(),
  }),
});

export type LabelSelector = z.infer<typeof labelSelector>;
export type PolicyPort = z.infer<typeof policyPort>;
export type PolicyPeer = z.infer<typeof policyPeer>;
export type NetworkPolicy = z.infer<typeof networkPolicySchema>;
export type Protocol = (typeof protocols)[number];
