//! The high-availability test bed: a private Postgres, moto (S3), N `data-processor` replicas and
//! HAProxy in front as the ALB stand-in, all on loopback; a steady mixed load against it; and the
//! numbers each scenario prints.

pub mod api;
pub mod cluster;
pub mod load;
pub mod report;
