//! The cluster's run store: `FunctionRun` resources, one namespace per store (the scheduler
//! runs one store and one timer per namespace, so names never need a namespace prefix).
//!
//! - A run is created under its deterministic id (`fn.tick.20260101t000010z`); the API
//!   server's 409 on a second create is what makes a fire time run once, even if two
//!   controllers briefly both believe they lead.
//! - Each run is owned by its Function (deleting the Function deletes its history) and
//!   labelled with function and schedule, so history is listed and pruned per schedule.
//! - Cursors (the last fire time handled per schedule, and the timing it was computed with)
//!   live in the Function's status, `lastSchedules` and `scheduleTimings`, written with the
//!   field manager `faas-scheduler` so the reconciler's status apply never touches them.

use faas_api::{Function, FunctionRun, REQUESTED_LABEL};
use faas_schedule::plan::is_final;
use faas_schedule::store::{Prune, StoreFuture, phase, prune_victims, run_id};
use faas_schedule::{Cursor, JobKey, RunQuery, RunStore, StoreError};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

pub use faas_api::contract::{FUNCTION_LABEL, SCHEDULE_LABEL, SCHEDULER_MANAGER};

/// `FunctionRun` resources of one namespace.
pub struct KubeRunStore {
    client: Client,
    namespace: String,
    /// Where the runs' whole logs are, deleted with the runs pruned.
    archive: Option<std::sync::Arc<crate::log_archive::LogArchive>>,
}

fn backend(action: &str) -> impl FnOnce(kube::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("{action}: {e}"))
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

impl KubeRunStore {
    /// A store of the runs in `namespace`.
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        KubeRunStore {
            client,
            namespace: namespace.into(),
            archive: None,
        }
    }

    /// Deletes the archived logs of the runs it prunes.
    pub fn with_archive(
        mut self,
        archive: Option<std::sync::Arc<crate::log_archive::LogArchive>>,
    ) -> Self {
        self.archive = archive;
        self
    }

    fn runs(&self) -> Api<FunctionRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn functions(&self) -> Api<Function> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create_run(&self, run: &FunctionRun) -> Result<bool, StoreError> {
        // Owned by its Function when it still exists (a run of a just-deleted function is
        // recorded anyway, unowned: it is the record of what happened).
        let owner = self
            .functions()
            .get_opt(&run.spec.function)
            .await
            .map_err(backend("reading the run's Function"))?
            .and_then(|f| f.controller_owner_ref(&()))
            .map(|mut owner| {
                // Owned, not controlled: the Function's controller is the reconciler.
                owner.controller = None;
                owner
            });
        // The record as the runner made it (its annotations say which scheduler owns it),
        // with our labels and owner; `status` is a subresource, written next.
        let mut object = run.clone();
        object.status = None;
        object.metadata.namespace = Some(self.namespace.clone());
        object.metadata.resource_version = None;
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(FUNCTION_LABEL.to_owned(), run.spec.function.clone());
        labels.insert(SCHEDULE_LABEL.to_owned(), run.spec.schedule.clone());
        object.metadata.owner_references = owner.map(|o| vec![o]);
        match self.runs().create(&PostParams::default(), &object).await {
            Ok(_) => {}
            // A person asked for this run by creating its record: take it over.
            Err(e) if is_status(&e, 409) => {
                if !self.adopt(&object).await? {
                    // Someone (another controller, an earlier attempt of ours) claimed it first.
                    return Ok(false);
                }
            }
            Err(e) => return Err(backend("creating a FunctionRun")(e)),
        }
        // `status` is a subresource: a create ignores it.
        self.write_status(run).await?;
        Ok(true)
    }

    /// Takes over a requested run's record (labelled [`REQUESTED_LABEL`], no status yet):
    /// our labels, annotations and owner replace the request's, guarded by its
    /// resourceVersion so that only one scheduler adopts it. False when it is no request.
    async fn adopt(&self, object: &FunctionRun) -> Result<bool, StoreError> {
        let name = run_id(object);
        let Some(existing) = self
            .runs()
            .get_opt(name)
            .await
            .map_err(backend("reading a requested FunctionRun"))?
        else {
            return Ok(false);
        };
        let requested = existing.labels().contains_key(REQUESTED_LABEL);
        if !requested || existing.status.is_some() {
            return Ok(false);
        }
        let mut labels = serde_json::Map::new();
        for (k, v) in object.labels() {
            labels.insert(k.clone(), json!(v));
        }
        labels.insert(REQUESTED_LABEL.to_owned(), serde_json::Value::Null);
        let patch = json!({
            "metadata": {
                "resourceVersion": existing.resource_version(),
                "labels": labels,
                "annotations": object.annotations(),
                "ownerReferences": object.metadata.owner_references,
            }
        });
        match self
            .runs()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(true),
            // Changed under us: another scheduler adopted it.
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(backend("adopting a requested FunctionRun")(e)),
        }
    }

    /// The attempt under way and the scheduler that owns it (a retry, or a run resumed after
    /// its scheduler stopped): on the record itself, since `status` is a subresource. A merge
    /// patch, so nothing else of the record is touched.
    async fn write_attempt(&self, run: &FunctionRun) -> Result<(), StoreError> {
        let mut patch = json!({"spec": {"attempt": run.spec.attempt}});
        if let Some(owner) = run.annotations().get(faas_schedule::run::OWNER_ANNOTATION) {
            patch["metadata"] =
                json!({"annotations": {faas_schedule::run::OWNER_ANNOTATION: owner}});
        }
        self.runs()
            .patch(run_id(run), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(backend("writing a FunctionRun's attempt"))?;
        Ok(())
    }

    async fn write_status(&self, run: &FunctionRun) -> Result<(), StoreError> {
        let Some(status) = &run.status else {
            return Ok(());
        };
        let patch = json!({
            "apiVersion": faas_api::API_VERSION,
            "kind": "FunctionRun",
            "status": status,
        });
        self.runs()
            .patch_status(
                run_id(run),
                &PatchParams::apply(SCHEDULER_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(backend("writing a FunctionRun's status"))?;
        Ok(())
    }

    /// Runs of one schedule (or all, with `None`), newest first.
    async fn listed(&self, key: Option<(&str, &str)>) -> Result<Vec<FunctionRun>, StoreError> {
        let mut params = ListParams::default();
        if let Some((function, schedule)) = key {
            params = params.labels(&format!(
                "{FUNCTION_LABEL}={function},{SCHEDULE_LABEL}={schedule}"
            ));
        }
        let mut runs = self
            .runs()
            .list(&params)
            .await
            .map_err(backend("listing FunctionRuns"))?
            .items;
        faas_api::newest_first(&mut runs);
        Ok(runs)
    }

    async fn prune(&self, prune: &Prune) -> Result<(), StoreError> {
        let runs = self
            .listed(Some((&prune.key.function, &prune.key.schedule)))
            .await?;
        let doomed = prune_victims(runs.iter(), prune);
        let mut gone = Vec::new();
        for id in doomed {
            match self.runs().delete(id, &DeleteParams::background()).await {
                Ok(_) => gone.push(id.to_owned()),
                Err(e) if is_status(&e, 404) => gone.push(id.to_owned()),
                Err(e) => return Err(backend("pruning a FunctionRun")(e)),
            }
        }
        // A record never loses its log while it exists: the objects go after the record.
        if let Some(archive) = &self.archive
            && !gone.is_empty()
            && let Err(e) = archive.delete_runs(&self.namespace, &gone).await
        {
            tracing::warn!(namespace = %self.namespace, error = %e, "the logs of pruned runs were not deleted");
        }
        Ok(())
    }

    async fn write_cursor(&self, cursor: &Cursor) -> Result<(), StoreError> {
        let schedule = cursor.key.schedule.to_string();
        let patch = json!({
            "apiVersion": faas_api::API_VERSION,
            "kind": "Function",
            "status": {
                "lastSchedules": {schedule.clone(): cursor.last.to_string()},
                "scheduleTimings": {schedule: cursor.timing},
            },
        });
        match self
            .functions()
            .patch_status(
                &cursor.key.function,
                &PatchParams::apply(SCHEDULER_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Deleted meanwhile: nothing to remember for it.
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(backend("writing a schedule cursor")(e)),
        }
    }
}

impl RunStore for KubeRunStore {
    fn create(
        &self,
        run: FunctionRun,
        cursor: Option<Cursor>,
        prune: Option<Prune>,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let created = self.create_run(&run).await?;
            if created {
                if let Some(cursor) = &cursor {
                    self.write_cursor(cursor).await?;
                }
                if let Some(prune) = &prune {
                    self.prune(prune).await?;
                }
            }
            Ok(created)
        })
    }

    fn update(&self, run: FunctionRun, prune: Option<Prune>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if run.spec.attempt > 1 {
                self.write_attempt(&run).await?;
            }
            self.write_status(&run).await?;
            if let Some(prune) = &prune {
                self.prune(prune).await?;
            }
            Ok(())
        })
    }

    fn get(&self, id: String) -> StoreFuture<'_, Option<FunctionRun>> {
        Box::pin(async move {
            self.runs()
                .get_opt(&id)
                .await
                .map_err(backend("reading a FunctionRun"))
        })
    }

    fn list(&self, query: RunQuery) -> StoreFuture<'_, Vec<FunctionRun>> {
        Box::pin(async move {
            let key = query.function.as_deref().zip(query.schedule.as_deref());
            let runs = self.listed(key).await?;
            Ok(runs
                .into_iter()
                .filter(|r| query.matches(r))
                .take(query.limit.unwrap_or(usize::MAX))
                .collect())
        })
    }

    fn cursors(&self) -> StoreFuture<'_, Vec<Cursor>> {
        Box::pin(async move {
            let functions = self
                .functions()
                .list(&ListParams::default())
                .await
                .map_err(backend("listing Functions for schedule cursors"))?;
            let mut cursors = Vec::new();
            for function in functions.items {
                let name = function.name_any();
                let Some(status) = function.status else {
                    continue;
                };
                for (schedule, last) in &status.last_schedules {
                    let Ok(last) = last.parse() else { continue };
                    cursors.push(Cursor {
                        key: JobKey::new(&name, schedule),
                        // No timing recorded: treated as a changed timing (start from now).
                        timing: status
                            .schedule_timings
                            .get(schedule)
                            .cloned()
                            .unwrap_or_default(),
                        last,
                    });
                }
            }
            Ok(cursors)
        })
    }

    fn set_cursor(&self, cursor: Cursor) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.write_cursor(&cursor).await })
    }

    fn unfinished(&self) -> StoreFuture<'_, Vec<FunctionRun>> {
        Box::pin(async move {
            Ok(self
                .listed(None)
                .await?
                .into_iter()
                .filter(|r| !is_final(phase(r)))
                .collect())
        })
    }
}
