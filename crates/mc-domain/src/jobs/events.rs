//! Job state changes in the event log: the `jobs` trigger writes each change of an
//! organization's job to the event outbox in the changing transaction; the outbox
//! forwarder (`events::outbox`) moves them into `agent_events`.

use crate::error::Result;
use crate::identity::context::Actor;
use sqlx::PgConnection;

/// Records who is changing jobs in this transaction, for the events the trigger writes.
pub async fn set_actor(conn: &mut PgConnection, actor: &Actor) -> Result<()> {
    sqlx::query(
        "SELECT set_config('app.actor_type', $1, true), set_config('app.actor_id', $2, true),
                set_config('app.actor_name', $3, true)",
    )
    .bind(actor.kind.as_str())
    .bind(actor.id.to_string())
    .bind(&actor.name)
    .execute(conn)
    .await?;
    Ok(())
}
