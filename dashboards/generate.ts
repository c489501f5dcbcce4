import { writeFileSync } from "node:fs";
import { DASHBOARD_FILE, dashboardJson } from "./loki-shipper.ts";

/** `npm run dashboard`: writes the dashboard JSON that users import into Grafana. */
writeFileSync(DASHBOARD_FILE, dashboardJson());
process.stdout.write(`Wrote ${DASHBOARD_FILE}\n`);
