/** Shared counters the test nodes update, so a test can see inside a running pipeline. */
export const probe = {
  produced: 0,
  consumed: 0,
  maxInFlight: 0,
  closed: [] as string[],
  reset() {
    this.produced = 0;
    this.consumed = 0;
    this.maxInFlight = 0;
    this.closed = [];
  },
};
