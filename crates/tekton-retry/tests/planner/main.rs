//! The pure planner: recorded real-Tekton cases, fixtures and properties.

mod planner_cases;
mod planner_common;
mod planner_fixtures;
mod planner_guards;
mod planner_hazards;
mod planner_proptest;
