// The lab's NetworkPolicies in force: those the lab starts with, then what
// `policy` steps apply and delete, handed to the network plugin's engine.
import type { Backend } from '../topologies/backend.js';
import { initialPolicies, policyRefMatches, type Lab } from '../lab/lab-file.js';
import type { PolicyEngine } from '../datapaths/types.js';
import type { NetworkPolicy } from '../policy/schema.js';
import { policyId } from '../policy/model.js';

/** What `policy` steps use. */
export interface PolicyControl {
  apply(refs: string[]): Promise<string>;
  delete(refs: string[]): Promise<string>;
}

export class LabPolicies implements PolicyControl {
  private active: NetworkPolicy[];

  constructor(
    private readonly backend: Backend,
    private readonly lab: Lab,
    private readonly engine: PolicyEngine,
  ) {
    this.active = initialPolicies(lab);
  }

  /** Put the starting set in force (and wait until every node has programmed every pod). */
  async start(): Promise<string> {
    await this.engine.setPolicies(this.backend, this.lab, this.active);
    return this.describe();
  }

  private describe(): string {
    return `in force: ${this.active.map(policyId).join(', ') || 'no policy'}`;
  }

  async apply(refs: string[]): Promise<string> {
    const add = this.lab.policies.filter((p) => refs.some((r) => policyRefMatches(r, p)));
    this.active = [...this.active.filter((p) => !add.includes(p)), ...add];
    await this.engine.setPolicies(this.backend, this.lab, this.active);
    return this.describe();
  }

  async delete(refs: string[]): Promise<string> {
    this.active = this.active.filter((p) => !refs.some((r) => policyRefMatches(r, p)));
    await this.engine.setPolicies(this.backend, this.lab, this.active);
    return this.describe();
  }
}
