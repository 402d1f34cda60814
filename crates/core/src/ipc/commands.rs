/// Every command the window can call, declared once. `with_commands!(callback)` hands the
/// list to `callback!`, which the desktop shell uses to generate its Tauri handlers, its ACL
/// command list (in `build.rs`) and the `generate_handler!` list, and the core uses to render
/// the UI's typed client (`ui/src/gen/ipc.ts`). A command missing its handler fails to
/// compile; a handler missing from this list is never registered.
///
/// Each entry is `kind name(arg: Type, ...) -> Return` followed, for `sync` and `async`
/// commands, by `= |console| body`, a `Result<Return>` (`async` bodies may `.await`). `shell`
/// commands hold state of the window (the clipboard, a bulk run's progress, a clicked
/// notification): the shell writes them by hand with exactly this signature.
#[macro_export]
macro_rules! with_commands {
    ($callback:ident) => {
        $callback! {
            sync app_info() -> AppInfo = |c| c.preferences.app_info();
            sync keychain_status() -> KeychainStatus = |c| Ok(c.preferences.keychain_status());
            sync overview() -> Overview = |c| c.overview();
            sync settings() -> Settings = |c| c.preferences.settings();
            sync set_theme(theme: Theme) -> Settings = |c| c.preferences.set_theme(theme);
            shell first_paint() -> ();
            sync instances() -> Vec<InstanceView> = |c| c.fleet.instances();
            async add_instance(request: AddInstance) -> InstanceView = |c| c.fleet.add_instance(request).await;
            shell add_instance_from_clipboard(name: String, address: String, profile: String) -> InstanceView;
            async refresh_instance(name: String) -> InstanceView = |c| c.fleet.refresh_instance(&name).await;
            async refresh_all() -> RefreshSummary = |c| c.fleet.refresh_all().await;
            async revoke_instance(name: String) -> InstanceView = |c| c.fleet.revoke_instance(&name).await;
            async remove_instance(name: String) -> () = |c| c.fleet.remove_instance(&name).await;
            sync events(filter: EventFilter, before: Option<Cursor>, limit: u32) -> EventPage =
                |c| c.timeline.events(&filter, before.as_ref(), limit);
            sync event_raw(instance: String, seq: i64) -> Option<String> = |c| c.timeline.raw(&instance, seq);
            sync sync_states() -> Vec<SyncState> = |c| c.timeline.sync_states();
            async sync_now() -> u64 = |c| c.timeline.sync_all().await;
            sync export_events(filter: EventFilter, format: ExportFormat) -> ExportResult =
                |c| c.timeline.export_to_dir(&filter, format, &c.data_dir().downloads());
            sync set_time_zone(zone: Option<String>) -> Settings = |c| c.preferences.set_time_zone(zone.as_deref());
            sync heatmap(query: HeatmapQuery) -> Heatmap = |c| c.analytics.heatmap(&query);
            sync export_heatmap(query: HeatmapQuery, format: ImageFormat) -> String =
                |c| c.analytics.export_heatmap_to_dir(&query, format, &c.data_dir().downloads());
            sync offenders(query: OffenderQuery) -> OffenderPage = |c| c.analytics.offender_page(&query);
            sync alerts(filter: AlertFilter) -> Vec<Alert> = |c| c.analytics.alerts(&filter);
            sync set_alert_state(id: i64, state: AlertState) -> Alert = |c| c.analytics.set_alert_state(id, state);
            sync set_alerts_state(ids: Vec<i64>, state: AlertState) -> AlertsMarked =
                |c| c.analytics.set_alerts_state(&ids, state);
            sync snoozes() -> Vec<Snooze> = |c| c.analytics.snoozes();
            sync snooze_rule(request: SnoozeRequest) -> Snooze = |c| c.analytics.snooze_rule(&request);
            sync unsnooze_rule(rule_id: String, instance: String) -> () =
                |c| c.analytics.unsnooze_rule(&rule_id, &instance);
            sync detection() -> DetectionSettings = |c| c.analytics.detection();
            sync set_detection(detection: DetectionSettings) -> DetectionSettings = |c| c.analytics.set_detection(&detection);
            sync reset_detection() -> DetectionSettings = |c| c.analytics.reset_detection();
            sync policy_overview() -> PolicyOverview = |c| c.protection.policy_overview();
            async why_blocked(ip: String) -> WhyBlocked = |c| c.protection.why_blocked(&ip).await;
            async unblock_address(request: UnblockAddress) -> Vec<InstanceOutcome> =
                |c| c.protection.unblock(&request).await;
            async block_everywhere(request: FleetBlockRequest) -> Vec<InstanceOutcome> =
                |c| c.protection.block_everywhere(&request).await;
            async replay_rules(request: ReplayRequest) -> ReplayReport =
                |c| c.protection.replay(request).await;
            shell next_opened_alert() -> i64;
            async credentials() -> CredentialInventory = |c| c.rotation.credentials().await;
            sync set_key_rotation_days(instance: String, days: Option<u32>) -> () =
                |c| c.rotation.set_key_rotation_days(&instance, days);
            async rotation_preview(instance: String, name: String) -> RotationPreview =
                |c| c.rotation.rotation_preview(&instance, &name).await;
            shell rotate_key(instance: String, name: String) -> RotationResult;
            shell copy_rotated_key(label: Option<String>) -> String;
            shell rotate_many(targets: Vec<(String, String)>) -> Vec<BulkItem>;
            shell bulk_progress() -> (u32, u32);
            sync rotation_history(limit: u32) -> Vec<RotationRecord> = |c| c.rotation.rotation_history(limit);
            sync compliance(query: ComplianceQuery) -> ComplianceView = |c| c.compliance.compliance(&query);
            async run_checks(instance: Option<String>) -> CheckRun =
                |c| c.compliance.run_checks(instance.as_deref(), Burst::Always).await;
            sync item_history(instance: String, item: String) -> Vec<HistoryEntry> =
                |c| c.compliance.item_history(&instance, &item);
            sync assign_item(instance: String, item: String, owner: Option<String>, due_at: Option<i64>) -> ItemView =
                |c| c.compliance.assign_item(&instance, &item, owner.as_deref(), due_at);
            sync sign_off_item(instance: String, item: String, note: String) -> ItemView =
                |c| c.compliance.sign_off_item(&instance, &item, &note);
            sync add_item_evidence(instance: String, item: String, evidence: EvidenceInput) -> ItemView =
                |c| c.compliance.add_item_evidence(&instance, &item, &evidence);
            sync waive_item(instance: String, item: String, waiver: WaiverInput) -> ItemView =
                |c| c.compliance.waive_item(&instance, &item, &waiver);
            sync end_waiver(instance: String, item: String) -> ItemView = |c| c.compliance.end_waiver(&instance, &item);
            sync export_compliance(format: ReportFormat) -> String =
                |c| c.reports.compliance_to_dir(format, &c.data_dir().downloads());
            sync set_tls_minimum(version: String) -> ComplianceView = |c| {
                c.compliance.set_tls_minimum(&version)?;
                c.compliance.compliance(&ComplianceQuery::default())
            };
            sync incidents() -> Vec<Incident> = |c| c.incidents.incidents();
            sync incident(id: i64) -> IncidentView = |c| c.incidents.incident(id);
            sync open_incident(input: OpenIncident) -> IncidentView = |c| {
                let incident = c.incidents.open_incident(&input)?;
                c.incidents.incident(incident.id)
            };
            sync incident_from_alert(alert: i64) -> IncidentView = |c| {
                let incident = c.incidents.incident_from_alert(alert)?;
                c.incidents.incident(incident.id)
            };
            sync incident_note(id: i64, decision: bool, text: String) -> IncidentView =
                |c| c.incidents.incident_note(id, decision, &text);
            sync update_incident(id: i64, status: Option<IncidentStatus>, owner: Option<String>, step: Option<String>) -> IncidentView =
                |c| c.incidents.update_incident(id, status, owner.as_deref(), step.as_deref());
            async incident_block(id: i64, instance: String, ip: String, ttl_secs: u64, spoofable_confirmed: bool) -> IncidentView =
                |c| c.incidents.incident_block(id, &instance, &ip, ttl_secs, spoofable_confirmed).await;
            async incident_unblock(id: i64, instance: String, ip: String) -> IncidentView =
                |c| c.incidents.incident_unblock(id, &instance, &ip).await;
            async incident_restart(id: i64, instance: String) -> IncidentView =
                |c| c.incidents.incident_restart(id, &instance).await;
            sync incident_writes(id: i64) -> Vec<TimelineEvent> = |c| c.incidents.incident_writes(id);
            async evidence_bundle(id: i64) -> BundleResult =
                |c| c.incidents.evidence_bundle(id, &c.data_dir().downloads()).await;
            sync export_incident_report(id: i64, markdown: bool) -> String =
                |c| c.reports.incident_to_dir(id, markdown, &c.data_dir().downloads());
            async incident_snapshot(id: i64, instance: String) -> IncidentView =
                |c| c.incidents.incident_snapshot(id, &instance).await;
            async incident_restore(id: i64, instance: String, name: String) -> IncidentView =
                |c| c.incidents.incident_restore(id, &instance, &name).await;
            async snapshots(instance: String) -> Vec<String> = |c| Ok(c
                .incidents
                .snapshots(&instance)
                .await?
                .snapshots
                .into_iter()
                .map(|s| s.name)
                .collect());
            sync audit_log(limit: u32) -> Vec<AuditEntry> = |c| c.audit.entries(limit);
            sync verify_audit() -> AuditVerdict = |c| c.audit.verify();
            sync rotate_audit_key() -> u32 = |c| c.audit.rotate_key();
        }
    };
}
