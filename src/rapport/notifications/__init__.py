"""Notifications: the in-app inbox with exact unread counts, preferences per type, category
and channel with quiet hours, push subscriptions (Web Push, FCM, APNs), and the pipeline
that turns outbox events into notifications and deliveries (push, e-mail, SMS) through
the job queue."""
