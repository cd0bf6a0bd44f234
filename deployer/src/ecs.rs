//! ECS: task definitions, the service, following a deployment and explaining its failure.

pub mod report;
pub mod rollout;
pub mod service;
pub mod taskdef;
