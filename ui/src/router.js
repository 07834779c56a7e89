import { createRouter, createWebHistory } from "vue-router";
import { loadSession, session } from "./api.js"; // used only once navigating: the import cycle is harmless

export const router = createRouter({
  history: createWebHistory("/ui/"),
  routes: [
    { path: "/", redirect: "/flows" },
    { path: "/flows", name: "flows", component: () => import("./views/FlowsList.vue") },
    { path: "/flows/new", name: "flow-new", component: () => import("./views/FlowEdit.vue") },
    { path: "/flows/:namespace/:id", name: "flow", component: () => import("./views/FlowEdit.vue") },
    { path: "/flows/:namespace/:id/run", name: "flow-run", component: () => import("./views/RunForm.vue") },
    { path: "/flows/:namespace/:id/revisions", name: "flow-revisions", component: () => import("./views/Revisions.vue") },
    { path: "/namespaces/:namespace", name: "namespace", component: () => import("./views/Namespace.vue") },
    { path: "/executions", name: "executions", component: () => import("./views/ExecutionsList.vue") },
    { path: "/executions/:id", name: "execution", component: () => import("./views/ExecutionPage.vue") },
    { path: "/triggers", name: "triggers", component: () => import("./views/Triggers.vue") },
    { path: "/plugins", name: "plugins", component: () => import("./views/Plugins.vue") },
    { path: "/login", name: "login", component: () => import("./views/Login.vue") },
    { path: "/:rest(.*)", name: "not-found", component: () => import("./views/NotFound.vue") },
  ],
});

// With authentication on, nobody logged in sees the login page first (and comes back after it).
router.beforeEach(async (to) => {
  try {
    await loadSession();
  } catch {
    return true; // the page shows the error of its own calls
  }
  if (to.name === "login") return session.authentication && !session.user ? true : { path: "/flows" };
  if (session.authentication && !session.user) return { name: "login", query: { next: to.fullPath } };
  return true;
});
