import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

export default {
  preprocess: vitePreprocess(),
  compilerOptions: {
    // Styles go to a .css file: the CSP allows no inline <style>.
    css: 'external',
  },
};
