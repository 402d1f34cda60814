import './app.css';

import { mount } from 'svelte';

import App from './App.svelte';
import { tauriHost } from './lib/host';
import { installCapture } from './lib/unexpected.svelte';

installCapture(window);

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
mount(App, { target, props: { host: tauriHost } });

// Report the first frame actually on screen: two frames after mount.
requestAnimationFrame(() =>
  requestAnimationFrame(() => {
    tauriHost.firstPaint().catch((e) => console.error('first paint report failed', e));
  }),
);
