//! `deployer`: builds the data-processor image, pushes it, and rolls it out on ECS with
//! autoscaling — idempotently, and with an exit code that tells the truth about the rollout.

pub mod aws;
pub mod cli;
pub mod config;
pub mod ecr;
pub mod ecs;
pub mod error;
pub mod image;
pub mod infra;
pub mod ledger;
pub mod lock;
pub mod logs;
pub mod logtail;
pub mod plan;
pub mod progress;
pub mod release;
pub mod rollback;
pub mod run;
pub mod scaling;
pub mod status;
pub mod tags;
pub mod task;
