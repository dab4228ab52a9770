// A lab this machine or this backend cannot run: skipped, with the reason, and
// never a failure (exit code 0, as README says). The kernel lacking a link type
// is one case (MissingFeatureError in preflight); a backend that cannot build
// what the lab's topology asks is another.
export class CannotRunHereError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CannotRunHereError';
  }
}
