// Builds the app into the kernel package (kernel/tiercel/ui/static), which the wheel ships.
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

export default defineConfig({
  base: "/ui/",
  plugins: [vue()],
  build: {
    outDir: "../kernel/tiercel/ui/static",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    modulePreload: { polyfill: false },
  },
  server: {
    // `npm run dev` against a running `tiercel server` (TIERCEL_URL, default http://127.0.0.1:8080)
    proxy: { "/api": { target: process.env.TIERCEL_URL || "http://127.0.0.1:8080", changeOrigin: true } },
  },
});
