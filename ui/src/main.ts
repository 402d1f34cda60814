import './app.css';

import { mount } from 'svelte';

import App from './App.svelte';
import { tauriHost } from './lib/host';
import { installCapture } from './lib/unexpected.svelte';

installCapture(window);

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');
// The one host: App gives it to the views' controllers through context.
mount(App, { target, props: { host: tauriHost } });
