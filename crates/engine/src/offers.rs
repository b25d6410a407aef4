//! Offers: create, update, pause, resume, clone, share, change history, the partner view.
