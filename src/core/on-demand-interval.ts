/**
 * A periodic task that runs only while it has work, so an idle node is never woken by it.
 * `wake()` arms it (idempotent, O(1)); each run returns whether work remains, and the interval
 * stops after a run that says none. While armed it runs at a fixed period, so nothing due waits
 * more than one period past its time. The timer is unref'd: it never keeps the process alive.
 */
export class OnDemandInterval {
  readonly #periodMs: number;
  readonly #run: () => boolean;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * @param periodMs time between two runs while armed
   * @param run one pass; returns true while work remains (then it runs again a period later)
   */
  constructor(periodMs: number, run: () => boolean) {
    this.#periodMs = Math.max(1, periodMs);
    this.#run = run;
  }

  /** Arm the interval if it is not running (no-op after stop()). The first run is one period away. */
  wake(): void {
    if (this.#timer || this.#stopped) return;
    this.#arm();
  }

  #arm(): void {
    this.#timer = setTimeout(this.#fire, this.#periodMs);
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    if (this.#run() && !this.#stopped && !this.#timer) this.#arm();
  };

  /** Whether the interval is armed. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Stop for good (shutdown): no further run, and wake() does nothing. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
