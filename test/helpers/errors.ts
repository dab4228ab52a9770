// The error a call throws, for tests that check its type and message.
import { CniError } from '../../src/cni/errors.js';
import { LabFileError } from '../../src/lab/lab-file.js';
import { parseLab } from '../../src/datapaths/index.js';

/** What `fn` throws, which must be an instance of `type`; anything else fails the test. */
export function thrown<E extends Error>(type: new (...args: any[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof type) return e;
    throw e;
  }
  throw new Error(`expected a ${type.name}`);
}

export const cniError = (fn: () => unknown): CniError => thrown(CniError, fn);

/** The error parsing `text` as the lab file bad.yaml gives. */
export const labError = (text: string): LabFileError => thrown(LabFileError, () => parseLab(text, 'bad.yaml'));
export const labErrorMessage = (text: string): string => labError(text).message;

/** The error a promise rejects with; a promise that resolves fails the test. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the promise to reject');
}
