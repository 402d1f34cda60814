// Errors nobody handled: uncaught exceptions, rejected promises, console.error calls and CSP
// violations. They are shown in a banner (never swallowed) and the GUI test fails on any.

export interface Unexpected {
  id: number;
  message: string;
}

export const unexpected: Unexpected[] = $state([]);
let nextId = 1;

export function report(message: string): void {
  unexpected.push({ id: nextId++, message });
}

export function dismiss(id: number): void {
  const index = unexpected.findIndex((u) => u.id === id);
  if (index >= 0) unexpected.splice(index, 1);
}

export function installCapture(win: Window & typeof globalThis): void {
  win.addEventListener('error', (event) => report(event.message || String(event.error)));
  win.addEventListener('unhandledrejection', (event) => {
    const reason = event.reason instanceof Error ? event.reason.message : String(event.reason);
    report(`Unhandled: ${reason}`);
  });
  win.document.addEventListener('securitypolicyviolation', (event) =>
    report(`Blocked by the content security policy: ${event.violatedDirective} ${event.blockedURI}`),
  );
  const original = win.console.error.bind(win.console);
  win.console.error = (...args: unknown[]) => {
    original(...args);
    report(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
  };
}
