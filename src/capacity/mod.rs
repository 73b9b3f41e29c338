//! `sdload capacity`: the highest login rate the target sustains within its SLO.

pub mod search;
