// Baseline page for bench/startup.py: report the first frame, like the console does.
requestAnimationFrame(() =>
  requestAnimationFrame(() => window.__TAURI_INTERNALS__.invoke('first_paint')),
);
