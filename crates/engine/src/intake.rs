//! Postback intake: authenticating MMP postbacks and logging every one.
