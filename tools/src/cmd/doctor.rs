use control_plane::service::doctor::{self, Options};
use serde_json::json;

use super::{Ctx, Report};
use crate::DoctorArgs;

pub(crate) async fn run(ctx: &Ctx, a: DoctorArgs) -> anyhow::Result<Report> {
    let fleet = ctx.fleet().await?;
    let tenants = fleet.directory.tenants().await?.len();
    let opts = Options {
        repair: a.repair,
        grace_secs: a.grace.max(0),
    };
    let findings = doctor::run(&fleet, opts, ctx.now()).await?;
    let repaired = findings.iter().filter(|f| f.repaired).count();
    let remaining: Vec<_> = findings.iter().filter(|f| !f.repaired).collect();
    let repairable = remaining.iter().filter(|f| f.repairable).count();

    let mut text = String::new();
    if findings.is_empty() {
        text.push_str(&format!("No drift: {tenants} tenant(s) checked.\n"));
    }
    for f in &findings {
        let id = f.tenant_id.as_ref().map(ToString::to_string);
        let who = f.slug.as_deref().or(id.as_deref()).unwrap_or("-");
        let state = match (f.repaired, &f.error, f.repairable, a.repair) {
            (true, _, _, _) => "repaired".to_owned(),
            (false, Some(e), _, _) => format!("repair failed: {e}"),
            (false, None, true, false) => "run with --repair".to_owned(),
            _ => "needs an operator".to_owned(),
        };
        text.push_str(&format!(
            "[{}] {who}: {}\n    -> {} ({state})\n",
            f.kind, f.detail, f.action
        ));
    }
    let report = Report::new(
        text,
        json!({
            "tenants": tenants,
            "findings": findings,
            "repaired": repaired,
            "remaining": remaining.len(),
        }),
    );
    Ok(if remaining.is_empty() {
        report
    } else if repairable > 0 && !a.repair {
        report.failed(
            "drift_found",
            format!(
                "{} problem(s) found; `tenantctl doctor --repair` fixes {repairable} of them",
                remaining.len()
            ),
        )
    } else {
        report.failed(
            "drift_remains",
            format!(
                "{} problem(s) remain that need an operator (see above)",
                remaining.len()
            ),
        )
    })
}
