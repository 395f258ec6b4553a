//! The images stage: one batch through `RegistrySync::copy_all`, images already in parity
//! never written, a partial failure naming each failed image and retried for those alone.

use std::sync::{Arc, Mutex};

use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{
    AutoApprove, Engine, Journal, MemoryJournal, Outcome, RunMode, StepOutput, journaled_outputs,
};
use qovery_dr_core::provider::{CopyReport, ImageCopy, ImageParity, RegistryCapabilities, RegistrySync};
use qovery_dr_core::{ErrorKind, ImageRef, ProviderError, ProviderResult};
use qovery_dr_testkit::PlanWorld;
use qovery_dr_testkit::memory::InMemoryRegistry;

use super::common::*;

/// How the spy answers a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// As the in-memory registry does.
    Honest,
    /// The first batch fails its second image transiently (nothing copied for it).
    FirstBatchLosesOne,
    /// Every batch fails `shop/worker` transiently.
    AlwaysLosesWorker,
    /// Every batch leaves out its last image (no entry, no copy: breaks the contract).
    DropsAnEntry,
}

/// The world's registry, recording every batch and every single copy.
#[derive(Debug)]
struct Spy {
    inner: InMemoryRegistry,
    answer: Answer,
    batches: Arc<Mutex<Vec<Vec<String>>>>,
    single_copies: Arc<Mutex<u32>>,
}

#[async_trait]
impl RegistrySync for Spy {
    fn name(&self) -> &str {
        "spy"
    }
    fn capabilities(&self) -> RegistryCapabilities {
        self.inner.capabilities()
    }
    async fn parity(&self, i: &ImageRef) -> ProviderResult<ImageParity> {
        self.inner.parity(i).await
    }
    async fn copy(&self, i: &ImageRef) -> ProviderResult<CopyReport> {
        *self.single_copies.lock().unwrap() += 1;
        self.inner.copy(i).await
    }
    async fn copy_all(&self, images: &[ImageRef]) -> ProviderResult<Vec<ImageCopy>> {
        let first = {
            let mut b = self.batches.lock().unwrap();
            b.push(images.iter().map(|i| i.repository().to_owned()).collect());
            b.len() == 1
        };
        let mut out = Vec::new();
        let keep = if self.answer == Answer::DropsAnEntry { images.len() - 1 } else { images.len() };
        for (n, image) in images.iter().take(keep).enumerate() {
            let lost = match self.answer {
                Answer::FirstBatchLosesOne => first && n == 1,
                Answer::AlwaysLosesWorker => image.repository() == "shop/worker",
                Answer::Honest | Answer::DropsAnEntry => false,
            };
            if lost {
                let e = ProviderError::new(ErrorKind::Transient, "spy", "copy_all", "connection reset mid-blob");
                out.push(ImageCopy::new(image.clone(), Err(e)));
                continue;
            }
            out.push(ImageCopy::new(image.clone(), self.inner.copy(image).await));
        }
        Ok(out)
    }
    fn remap(&self, i: &ImageRef) -> ProviderResult<ImageRef> {
        self.inner.remap(i)
    }
}

/// The aws plan's world with `web` and `worker` missing from the DR registry.
fn world_missing_two() -> PlanWorld {
    let pw = aws();
    let host = pw.plan.registry_mapping().to.host.clone();
    pw.world.with_state(|s| {
        let reg = s.registries.get_mut(&host).unwrap();
        for repo in ["shop/web", "shop/worker"] {
            assert!(reg.tags.remove(&(repo.to_owned(), "v1".to_owned())).is_some(), "{repo} was in the DR registry");
        }
    });
    pw
}

struct Run {
    engine: Engine,
    journal: MemoryJournal,
    batches: Arc<Mutex<Vec<Vec<String>>>>,
    single_copies: Arc<Mutex<u32>>,
}

fn engine_with_spy(pw: &PlanWorld, answer: Answer) -> Run {
    let (batches, single_copies) = (Arc::default(), Arc::default());
    let spy = Spy {
        inner: InMemoryRegistry::new(&pw.world, pw.plan.registry_mapping().clone()),
        answer,
        batches: Arc::clone(&batches),
        single_copies: Arc::clone(&single_copies),
    };
    let mut providers = pw.providers();
    providers.registry = Arc::new(spy);
    let journal = MemoryJournal::new();
    let engine = Engine::builder(pw.plan.clone(), providers)
        .journal(journal.clone())
        .approver(AutoApprove::new("oncall-sre"))
        .options(options())
        .build();
    Run { engine, journal, batches, single_copies }
}

async fn images_output(journal: &MemoryJournal, run_id: &str) -> qovery_dr_core::engine::SyncImagesOutput {
    let entries = journal.entries().await.unwrap();
    match journaled_outputs(&entries, run_id).unwrap().remove("sync-images") {
        Some(StepOutput::SyncImages(o)) => o,
        other => panic!("the sync-images step journaled {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_images_stage_copies_only_what_is_missing_in_one_batch() {
    let pw = world_missing_two();
    let r = engine_with_spy(&pw, Answer::Honest);
    let images = r.engine.plan(RunMode::Switchover).await.unwrap();
    let stage = images.stages.iter().find(|s| s.name == "images").unwrap();
    assert_eq!(stage.steps.len(), 1, "one step for the whole stage: {:?}", stage.steps);
    assert_eq!(stage.steps[0].id, "sync-images");
    assert!(
        stage.steps[0].description.contains("3 images present in the DR registry in one batch"),
        "{}",
        stage.steps[0].description
    );

    let report = r.engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(
        *r.batches.lock().unwrap(),
        [vec!["shop/web".to_owned(), "shop/worker".to_owned()]],
        "api was in parity"
    );
    assert_eq!(*r.single_copies.lock().unwrap(), 0, "no image copied one by one");
    let out = images_output(&r.journal, &report.run_id).await;
    let got: Vec<(&str, bool)> = out.images.iter().map(|i| (i.image.repository(), i.copied)).collect();
    assert_eq!(got, [("shop/api", false), ("shop/web", true), ("shop/worker", true)]);
    for i in &out.images {
        let dr = pw.plan.registry_mapping().remap(&i.image).unwrap();
        assert_eq!(
            pw.providers().registry.parity(&i.image).await.unwrap(),
            ImageParity::Present { digest: i.digest.clone() },
            "{dr}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn images_all_in_parity_are_read_and_never_written() {
    let pw = aws();
    let r = engine_with_spy(&pw, Answer::Honest);
    let report = r.engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert!(r.batches.lock().unwrap().is_empty(), "no batch: {:?}", r.batches.lock().unwrap());
    let out = images_output(&r.journal, &report.run_id).await;
    assert_eq!(out.images.len(), 3);
    assert!(out.images.iter().all(|i| !i.copied && i.bytes.is_none()), "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_loses_one_image_is_retried_for_that_image_alone() {
    let pw = world_missing_two();
    let r = engine_with_spy(&pw, Answer::FirstBatchLosesOne);
    let report = r.engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    let batches = r.batches.lock().unwrap().clone();
    assert_eq!(batches, [vec!["shop/web".to_owned(), "shop/worker".to_owned()], vec!["shop/worker".to_owned()]]);
    let step = report.steps.iter().find(|s| s.name == "sync-images").unwrap();
    assert_eq!(step.attempts, 2, "{step:?}");
    let out = images_output(&r.journal, &report.run_id).await;
    // web was copied by the first attempt: in parity by the second, so not "copied" there.
    let got: Vec<(&str, bool)> = out.images.iter().map(|i| (i.image.repository(), i.copied)).collect();
    assert_eq!(got, [("shop/api", false), ("shop/web", false), ("shop/worker", true)]);
}

#[tokio::test(start_paused = true)]
async fn an_image_that_keeps_failing_fails_the_stage_naming_it_and_nothing_is_deployed() {
    let pw = world_missing_two();
    let r = engine_with_spy(&pw, Answer::AlwaysLosesWorker);
    let failed = r.engine.run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains("1 of 3 images are not in the DR registry (2 are): "), "{message}");
    assert!(message.contains("shop/worker:v1: connection reset mid-blob (transient)"), "{message}");
    assert!(!message.contains("shop/web:v1:"), "only what failed is named: {message}");
    let step = failed.report.steps.iter().find(|s| s.name == "sync-images").unwrap();
    assert_eq!(step.attempts, 6, "transient: retried by the step's policy: {step:?}");
    let batches = r.batches.lock().unwrap().clone();
    assert_eq!(batches[0], ["shop/web", "shop/worker"]);
    assert!(batches[1..].iter().all(|b| b == &["shop/worker"]), "web, copied once, is never sent again: {batches:?}");
    assert!(failed.report.steps.iter().filter(|s| s.stage == "deploy").all(|s| s.attempts == 0), "nothing deployed");
}

#[tokio::test(start_paused = true)]
async fn an_image_the_primary_registry_lacks_fails_the_stage_at_once_naming_it() {
    let pw = world_missing_two();
    let worker: ImageRef = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/worker:v1".parse().unwrap();
    pw.world.with_state(|s| {
        s.registries.get_mut(worker.registry()).unwrap().tags.remove(&("shop/worker".to_owned(), "v1".to_owned()));
    });
    let r = engine_with_spy(&pw, Answer::Honest);
    let failed = r.engine.run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    assert!(message.contains(&format!("image {worker} is not in the primary registry")), "{message}");
    let step = failed.report.steps.iter().find(|s| s.name == "sync-images").unwrap();
    assert_eq!(step.attempts, 1, "NotFound is not retried: {step:?}");
    assert!(r.batches.lock().unwrap().is_empty(), "the parity read refused it before any copy");
}

#[tokio::test(start_paused = true)]
async fn a_sync_that_drops_an_entry_of_its_batch_is_refused_as_breaking_the_contract() {
    let pw = world_missing_two();
    let r = engine_with_spy(&pw, Answer::DropsAnEntry);
    let failed = r.engine.run(RunMode::Switchover).await.unwrap_err();
    let message = failed.error.to_string();
    // The first batch copied web and left worker out; every retry sends worker alone.
    assert!(message.contains("answered a batch of 1 images with 0 entries"), "{message}");
    assert!(message.contains("breaks the copy_all contract"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn with_one_global_registry_nothing_is_copied_and_the_dr_site_runs_the_same_images() {
    let plan = plan_edited("aws-cross-region.toml", |text| {
        text.replace(
            "host = \"123456789012.dkr.ecr.eu-central-1.amazonaws.com\"",
            "host = \"123456789012.dkr.ecr.eu-west-3.amazonaws.com\"",
        ) + "\n[failover]\nsingle_global_registry = true\n"
    });
    assert!(plan.warnings().iter().any(|w| w.path == "failover.single_global_registry"), "{:?}", plan.warnings());
    let pw = qovery_dr_testkit::World::from_plan(&plan);
    let r = engine_with_spy(&pw, Answer::Honest);
    let report = r.engine.run(RunMode::Switchover).await.unwrap_or_else(|f| panic!("{}", f.error));
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(r.batches.lock().unwrap().is_empty(), "nothing copied: {:?}", r.batches.lock().unwrap());
    let out = images_output(&r.journal, &report.run_id).await;
    assert_eq!(out.images.len(), 3);
    assert!(out.images.iter().all(|i| !i.copied), "{out:?}");
    let env = &pw.plan.dr().environments[0];
    for svc in pw.providers().cluster.list_services(env).await.unwrap() {
        assert_eq!(svc.image.unwrap().registry(), "123456789012.dkr.ecr.eu-west-3.amazonaws.com");
    }
}
