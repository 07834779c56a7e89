import { createRouter, createWebHistory } from "vue-router";

export const router = createRouter({
  history: createWebHistory("/ui/"),
  routes: [
    { path: "/", redirect: "/flows" },
    { path: "/flows", name: "flows", component: () => import("./views/FlowsList.vue") },
    { path: "/flows/new", name: "flow-new", component: () => import("./views/FlowEdit.vue") },
    { path: "/flows/:namespace/:id", name: "flow", component: () => import("./views/FlowEdit.vue") },
    { path: "/flows/:namespace/:id/run", name: "flow-run", component: () => import("./views/RunForm.vue") },
    { path: "/flows/:namespace/:id/revisions", name: "flow-revisions", component: () => import("./views/Revisions.vue") },
    { path: "/executions", name: "executions", component: () => import("./views/ExecutionsList.vue") },
    { path: "/executions/:id", name: "execution", component: () => import("./views/ExecutionPage.vue") },
    { path: "/triggers", name: "triggers", component: () => import("./views/Triggers.vue") },
    { path: "/plugins", name: "plugins", component: () => import("./views/Plugins.vue") },
    { path: "/login", name: "login", component: () => import("./views/Login.vue") },
    { path: "/:rest(.*)", name: "not-found", component: () => import("./views/NotFound.vue") },
  ],
});
