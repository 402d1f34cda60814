// The console's backend as the UI sees it. The `Host` interface and the client are generated
// from the Rust command list (`src/gen/ipc.ts`, the only module that imports @tauri-apps/*);
// this module adds the error the UI branches on. Everything else receives a `Host`, so the UI
// runs against the fakes in tests.
import type { ErrorCode } from '../gen/ErrorCode';
import { createHost, tauriCall, type Host } from '../gen/ipc';

export type { Host };

/** Codes the UI branches on: the core's, plus `ipc_failed` when the call itself failed. */
export type HostErrorCode = ErrorCode | 'ipc_failed';

/** A failed host call: the core's `{code, message}`, or an IPC failure. */
export class HostError extends Error {
  readonly code: HostErrorCode;

  constructor(code: HostErrorCode, message: string) {
    super(message);
    this.name = 'HostError';
    this.code = code;
  }
}

/** Turn whatever a rejected call carried into a HostError. */
export function toHostError(raw: unknown): HostError {
  if (raw instanceof HostError) return raw;
  if (typeof raw === 'object' && raw !== null && 'code' in raw && 'message' in raw) {
    const { code, message } = raw as { code: unknown; message: unknown };
    if (typeof code === 'string' && typeof message === 'string') {
      return new HostError(code as ErrorCode, message);
    }
  }
  const text = raw instanceof Error ? raw.message : String(raw);
  return new HostError('ipc_failed', `The console's backend did not answer: ${text}`);
}

/** The window's host: every command through Tauri's `invoke`, failures as HostErrors. */
export const tauriHost: Host = createHost(async (command, args) => {
  try {
    return await tauriCall(command, args);
  } catch (raw) {
    throw toHostError(raw);
  }
});
