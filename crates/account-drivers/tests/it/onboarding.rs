//! `onboarding` driver tests.
