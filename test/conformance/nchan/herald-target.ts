/** Herald in-process on 127.0.0.1:0 with the conformance route set (filled in with Phase 2). */
export async function startHerald(_routes: Record<string, unknown>[]): Promise<{ baseUrl: string; stop(): Promise<void> }> {
  throw new Error('Herald Nchan front not available yet');
}
