//! The sandbox cluster itself: the API emulator, the front proxy and the Tekton simulator against recorded real-Tekton runs.

mod emulator_access;
mod emulator_crud;
mod emulator_delete;
mod emulator_kubectl;
mod emulator_proxy;
mod emulator_store;
mod emulator_watch;
mod proxy_pool;
mod running_emulator;
mod sandbox_front_proxy_rotation;
mod simulator_driver;
mod simulator_fixtures;
mod simulator_properties;
