// The governance half of the app: which view each governance address shows, its title, and its
// entries in the main navigation. Kept apart from app.tsx so the two halves change separately.

import "./gov/gov.css";
import type { GovRoute } from "../state/gov";
import { AuditView } from "./audit/AuditView";
import { DeploymentsView } from "./deployments/DeploymentsView";
import { HealthView } from "./health/HealthView";
import { LineageView } from "./lineage/LineageView";
import { ModelView } from "./models/ModelView";
import { ModelsView } from "./models/ModelsView";
import { VersionView } from "./models/VersionView";
import { TraceView } from "./trace/TraceView";

export function GovView({ route }: { route: GovRoute }) {
  switch (route.name) {
    case "models":
      return <ModelsView search={route.search} asOf={route.asOf} />;
    case "model":
      return <ModelView key={route.model} model={route.model} asOf={route.asOf} />;
    case "modelVersion":
      return <VersionView key={`${route.model}/${route.version}`} model={route.model} version={route.version} asOf={route.asOf} />;
    case "lineage":
      return <LineageView state={route.state} asOf={route.asOf} />;
    case "trace":
      return <TraceView predictionId={route.predictionId} asOf={route.asOf} />;
    case "deployments":
      return <DeploymentsView asOf={route.asOf} />;
    case "health":
      return <HealthView asOf={route.asOf} />;
    case "audit":
      return <AuditView state={route.state} />;
  }
}

export function govTitle(route: GovRoute): string {
  switch (route.name) {
    case "models":
      return "Models";
    case "model":
      return `Model ${route.model}`;
    case "modelVersion":
      return `${route.model} v${route.version}`;
    case "lineage":
      return route.state.node ? `Lineage of ${route.state.node}` : "Lineage";
    case "trace":
      return route.predictionId ? `Trace of ${route.predictionId}` : "Prediction trace";
    case "deployments":
      return "Deployments";
    case "health":
      return "Lineage health";
    case "audit":
      return "Audit log";
  }
}

/** The main navigation's governance entries; `admin` ones are shown to admins only (and to everyone without access control). */
export const GOV_NAV: { href: string; label: string; names: string[]; admin?: boolean }[] = [
  { href: "#/models", label: "Models", names: ["models", "model", "modelVersion"] },
  { href: "#/lineage", label: "Lineage", names: ["lineage"] },
  { href: "#/trace", label: "Trace", names: ["trace"] },
  { href: "#/deployments", label: "Deployments", names: ["deployments"] },
  { href: "#/health", label: "Health", names: ["health"] },
  { href: "#/audit", label: "Audit", names: ["audit"], admin: true },
];
