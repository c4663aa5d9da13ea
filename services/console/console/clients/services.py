"""Each service's calls by name. Bodies and answers are the services' own JSON (see their /docs)."""

from __future__ import annotations

from typing import Any

from console.clients.base import Json, UserApi

Body = dict[str, Any]


class OpsReads(UserApi):
    """What every service offers ops alike: dead letters and consumer lag."""

    async def dead_letters(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/dead-letters", **query)

    async def dead_letter_summary(self) -> Json:
        return await self.get("/v1/ops/dead-letters/summary")

    async def dead_letter(self, number: int) -> Json:
        return await self.get(f"/v1/ops/dead-letters/{number}")

    async def replay_dead_letter(self, number: int) -> Json:
        return await self.post(f"/v1/ops/dead-letters/{number}/replay")

    async def replay_topic(self, topic: str) -> Json:
        return await self.post("/v1/ops/dead-letters/replay", {"topic": topic})

    async def consumers(self) -> Json:
        return await self.get("/v1/ops/consumers")

    # --- audit log (every service keeps its own; ops search it) ---
    async def audit(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/audit", **query)


class PointsApi(OpsReads):
    # members (a member passes "me"; ops pass the member id)
    async def member(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}")

    async def balance(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/balance")

    async def lots(self, member: str = "me", cursor: str | None = None, limit: int = 50) -> Json:
        return await self.get(f"/v1/members/{member}/lots", cursor=cursor, limit=limit)

    async def history(self, member: str = "me", cursor: str | None = None, limit: int = 50) -> Json:
        return await self.get(f"/v1/members/{member}/history", cursor=cursor, limit=limit)

    async def identifiers(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/identifiers")

    async def link(self, body: Body, member: str = "me") -> Json:
        return await self.post(f"/v1/members/{member}/identifiers", body)

    async def unlink_card(self, member: str, card_token: str) -> Json:
        return await self.delete(f"/v1/members/{member}/identifiers/card/{card_token}")

    async def unlink_partner_ref(self, member: str, partner_id: str, customer_ref: str) -> Json:
        return await self.delete(f"/v1/members/{member}/identifiers/partner/{partner_id}/{customer_ref}")

    async def gift(self, body: Body, member: str = "me") -> Json:
        return await self.post(f"/v1/members/{member}/gifts", body)

    async def gifts(self, member: str = "me", limit: int = 50) -> Json:
        return await self.get(f"/v1/members/{member}/gifts", limit=limit)

    async def member_activities(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/activities")

    async def claim(self, activity_id: str, body: Body, member: str = "me") -> Json:
        return await self.post(f"/v1/members/{member}/activities/{activity_id}/claims", body)

    async def set_referrer(self, referrer_member_id: str, member: str = "me") -> Json:
        return await self.put(f"/v1/members/{member}/referrer", {"referrer_member_id": referrer_member_id})

    # --- daily earnings and share cards (a member's own; the shared card is public: no token) ---
    async def daily_earnings(self, days: int = 7, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/daily-earnings", days=days)

    async def share_cards(self) -> Json:
        return await self.get("/v1/members/me/share-cards")

    async def make_share_card(self, body: Body) -> Json:
        return await self.post("/v1/members/me/share-cards", body)

    async def revoke_share_card(self, card_id: str) -> Json:
        return await self.delete(f"/v1/members/me/share-cards/{card_id}")

    async def shared_card(self, token: str) -> Json:
        """Anyone's read of a card by its link; the token is checked for its shape before it reaches a path."""
        return await self.get(f"/v1/share-cards/{token}")

    # --- tiers (anyone signed in reads the tier set; a member its own tier, ops any and the rest) ---
    async def published_segments(self) -> Json:
        """Segments ops published for member prices (names and sizes), for partner staff and ops."""
        return await self.get("/v1/segments/published")

    async def publish_segment(self, segment_id: str) -> Json:
        return await self.post(f"/v1/ops/segments/{segment_id}/publications")

    async def tier_set(self) -> Json:
        return await self.get("/v1/tiers")

    async def member_tier(self, member: str = "me", limit: int = 20) -> Json:
        return await self.get(f"/v1/members/{member}/tier", limit=limit)

    async def put_tier_set(self, body: Body) -> Json:
        return await self.put("/v1/ops/tier-set", body)

    async def tier_summary(self) -> Json:
        return await self.get("/v1/ops/tiers/summary")

    async def run_tier_reviews(self) -> Json:
        return await self.post("/v1/ops/tier-reviews")

    # ops
    async def create_member(self, body: Body) -> Json:
        return await self.post("/v1/members", body)

    async def search_members(self, q: str = "", limit: int = 20) -> Json:
        return await self.get("/v1/ops/members", q=q, limit=limit)

    async def summary(self) -> Json:
        return await self.get("/v1/ops/summary")

    async def expiry_runs(self, limit: int = 20) -> Json:
        return await self.get("/v1/ops/expiry-runs", limit=limit)

    async def run_expiry(self) -> Json:
        return await self.post("/v1/ops/expiry-runs")

    async def card_rates(self) -> Json:
        return await self.get("/v1/ops/card-earn-rates")

    async def add_card_rate(self, body: Body) -> Json:
        return await self.post("/v1/ops/card-earn-rates", body)

    async def issue_link_code(self, body: Body) -> Json:
        return await self.post("/v1/ops/link-codes", body)

    async def segments(self) -> Json:
        return await self.get("/v1/ops/segments")

    async def segment(self, segment_id: str) -> Json:
        return await self.get(f"/v1/ops/segments/{segment_id}")

    async def create_segment(self, body: Body) -> Json:
        return await self.post("/v1/ops/segments", body)

    async def preview_segment(self, body: Body) -> Json:
        return await self.post("/v1/ops/segments/preview", body)

    async def activities(self) -> Json:
        return await self.get("/v1/ops/activities")

    async def activity(self, activity_id: str) -> Json:
        return await self.get(f"/v1/ops/activities/{activity_id}")

    async def create_activity(self, body: Body) -> Json:
        return await self.post("/v1/ops/activities", body)

    async def activity_step(self, activity_id: str, step: str, body: Body | None = None) -> Json:
        """schedule, activate, pause, end, revisions or budget."""
        return await self.post(f"/v1/ops/activities/{activity_id}/{step}", body)

    async def report(self, activity_id: str) -> Json:
        return await self.get(f"/v1/ops/activities/{activity_id}/report")

    async def report_csv(self, activity_id: str) -> str:
        return await self.get_text(f"/v1/ops/activities/{activity_id}/report.csv")

    # --- red packets (members send from their points, ops from an activity's budget; members grab) ---
    async def create_red_packet(self, body: Body) -> Json:
        return await self.post("/v1/red-packets", body)

    async def red_packet(self, packet_id: str) -> Json:
        return await self.get(f"/v1/red-packets/{packet_id}")

    async def red_packet_by_link(self, token: str) -> Json:
        return await self.get(f"/v1/red-packets/by-link/{token}")

    async def grab_red_packet(self, packet_id: str) -> Json:
        return await self.post(f"/v1/red-packets/{packet_id}/grabs")

    async def grab_red_packet_by_link(self, token: str) -> Json:
        return await self.post(f"/v1/red-packets/by-link/{token}/grabs")

    async def close_red_packet(self, packet_id: str) -> Json:
        return await self.post(f"/v1/red-packets/{packet_id}/close")

    async def member_red_packets(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/red-packets")

    async def ops_red_packets(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/red-packets", **query)

    # --- adjustments (ops credit or debit a member; above the threshold a second ops user approves) ---
    async def request_adjustment(self, body: Body) -> Json:
        return await self.post("/v1/ops/adjustments", body)

    async def adjustments(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/adjustments", **query)

    async def approve_adjustment(self, adjustment_id: str, note: str | None = None) -> Json:
        return await self.post(f"/v1/ops/adjustments/{adjustment_id}/approve", {"note": note or None})

    async def reject_adjustment(self, adjustment_id: str, note: str | None = None) -> Json:
        return await self.post(f"/v1/ops/adjustments/{adjustment_id}/reject", {"note": note or None})

    # --- velocity rules and the review queue (earnings held as pending points; ops release or reject) ---
    async def velocity_rules(self) -> Json:
        return await self.get("/v1/ops/velocity-rules")

    async def put_velocity_rules(self, body: Body) -> Json:
        return await self.put("/v1/ops/velocity-rules", body)

    async def reviews(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/reviews", **query)

    async def decide_review(self, review_id: str, decision: str, note: str | None = None) -> Json:
        """`decision` is `release` or `reject`."""
        return await self.post(f"/v1/ops/reviews/{review_id}/{decision}", {"note": note or None})

    # --- attribution and targeted messages (share links: members and ops make them, anyone opens them) ---
    async def create_share_link(self, body: Body) -> Json:
        return await self.post("/v1/share-links", body)

    async def share_links(self, **query: str | int | None) -> Json:
        return await self.get("/v1/share-links", **query)

    async def share_link(self, code: str) -> Json:
        """Anyone's read (no token needed); the code is checked for its shape before it reaches a path."""
        return await self.get(f"/v1/share-links/{code}")

    async def open_share_link(self, code: str, open_id: str | None = None) -> Json:
        """Anyone's open (a member's token names the member): the open kept, and the link's target."""
        return await self.post(f"/v1/share-links/{code}/opens", {"open_id": open_id} if open_id else None)

    async def attribution(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/attribution", **query)

    async def attribution_csv(self, **query: str | int | None) -> str:
        return await self.get_text("/v1/ops/attribution.csv", **query)

    # --- liability (ops): statements, the expiry forecast, rates and issue prices ---
    async def liability(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/liability", **query)

    async def liability_statement(self, month: str) -> Json:
        """`month` is YYYY-MM, checked by the caller before it reaches the path."""
        return await self.get(f"/v1/ops/liability/statements/{month}")

    async def liability_statement_csv(self, month: str) -> str:
        return await self.get_text(f"/v1/ops/liability/statements/{month}.csv")

    async def liability_forecast(self) -> Json:
        return await self.get("/v1/ops/liability/forecast")

    async def liability_rates(self, **query: str | int | None) -> Json:
        return await self.get("/v1/ops/liability/rates", **query)

    async def issue_prices(self) -> Json:
        return await self.get("/v1/ops/issue-prices")

    async def set_issue_price(self, body: Body) -> Json:
        return await self.post("/v1/ops/issue-prices", body)

    # --- data rights: a member's export and erasure (the member itself, or ops) ---
    async def data_export(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/data-export")

    async def erase(self, member: str = "me") -> Json:
        return await self.post(f"/v1/members/{member}/erasure", {"confirm": "ERASE"})

    # --- points exchange: programmes and rates; a member's exchanges out; ops' card-points rates ---
    async def exchange_programmes(self) -> Json:
        return await self.get("/v1/exchange-programmes")

    async def exchanges(self, member: str = "me", limit: int = 50) -> Json:
        return await self.get(f"/v1/members/{member}/exchanges", limit=limit)

    async def exchange(self, body: Body, member: str = "me") -> Json:
        return await self.post(f"/v1/members/{member}/exchanges", body)

    async def card_points_rates(self) -> Json:
        return await self.get("/v1/ops/card-points-rates")

    async def add_card_points_rate(self, body: Body) -> Json:
        return await self.post("/v1/ops/card-points-rates", body)

    async def save_exchange_programme(self, partner_id: str, body: Body) -> Json:
        return await self.put(f"/v1/ops/exchange-programmes/{partner_id}", body)

    async def add_exchange_rate(self, partner_id: str, body: Body) -> Json:
        return await self.post(f"/v1/ops/exchange-programmes/{partner_id}/rates", body)

    # --- batch import runs (ops): `make import` records them, ops read them ---
    async def import_runs(self, limit: int = 50) -> Json:
        return await self.get("/v1/ops/imports", limit=limit)

    async def preferences(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/preferences")

    async def set_preferences(self, channel: str | None, member: str = "me") -> Json:
        return await self.put(f"/v1/members/{member}/preferences", {"channel": channel})


class PartnersApi(OpsReads):
    # a partner's own staff, or ops
    async def partner(self, partner_id: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}")

    async def contracts(self, partner_id: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/contracts")

    async def offers(self, partner_id: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/offers")

    async def offer(self, partner_id: str, offer_id: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/offers/{offer_id}")

    async def put_offer(self, partner_id: str, offer_id: str, body: Body) -> Json:
        return await self.put(f"/v1/partners/{partner_id}/offers/{offer_id}", body)

    async def withdraw_offer(self, partner_id: str, offer_id: str) -> Json:
        return await self.delete(f"/v1/partners/{partner_id}/offers/{offer_id}")

    async def statement(self, partner_id: str, period: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/statements", period=period)

    async def statement_csv(self, partner_id: str, period: str) -> str:
        return await self.get_text(f"/v1/partners/{partner_id}/statements.csv", period=period)

    async def purchases(
        self, partner_id: str, outcome: str | None = None, before: str | None = None, limit: int = 50
    ) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/purchases", outcome=outcome, before=before, limit=limit)

    async def rotate_key(self, partner_id: str) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/keys")

    async def revoke_key(self, partner_id: str, key_id: str) -> Json:
        return await self.delete(f"/v1/partners/{partner_id}/keys/{key_id}")

    async def issue_link_code(self, partner_id: str, body: Body) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/link-codes", body)

    # --- points exchange: exchanges into the partner's programme; its staff confirm or refuse ---
    async def partner_exchanges(self, partner_id: str, status: str = "pending") -> Json:
        return await self.get(f"/v1/partners/{partner_id}/exchanges", status=status)

    async def confirm_exchange(self, partner_id: str, exchange_id: str, partner_reference: str) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/exchanges/{exchange_id}/confirm",
                               {"partner_reference": partner_reference})  # fmt: skip

    async def refuse_exchange(self, partner_id: str, exchange_id: str, reason: str) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/exchanges/{exchange_id}/refuse", {"reason": reason})

    # --- webhooks: a partner's endpoints and their delivery log ---
    async def webhook_endpoints(self, partner_id: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/webhook-endpoints")

    async def add_webhook_endpoint(self, partner_id: str, body: Body) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/webhook-endpoints", body)

    async def change_webhook_endpoint(self, partner_id: str, endpoint_id: str, body: Body) -> Json:
        path = f"/v1/partners/{partner_id}/webhook-endpoints/{endpoint_id}"
        return (await self._client.call("PATCH", path, self._token, body=body)).json()

    async def rotate_webhook_secret(self, partner_id: str, endpoint_id: str) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/webhook-endpoints/{endpoint_id}/secret")

    async def webhook_deliveries(self, partner_id: str, **query: str | int | None) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/webhook-deliveries", **query)

    async def webhook_delivery(self, partner_id: str, delivery_id: str) -> Json:
        return await self.get(f"/v1/partners/{partner_id}/webhook-deliveries/{delivery_id}")

    async def replay_webhook_delivery(self, partner_id: str, delivery_id: str) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/webhook-deliveries/{delivery_id}/replay")

    # ops
    async def partners(self) -> Json:
        return await self.get("/v1/partners")

    async def register(self, body: Body) -> Json:
        return await self.post("/v1/partners", body)

    async def add_contract(self, partner_id: str, body: Body) -> Json:
        return await self.post(f"/v1/partners/{partner_id}/contracts", body)

    async def statements(self, period: str) -> Json:
        return await self.get("/v1/ops/statements", period=period)

    async def statements_csv(self, period: str) -> str:
        return await self.get_text("/v1/ops/statements.csv", period=period)

    async def finalise(self, body: Body) -> Json:
        return await self.post("/v1/ops/settlement-runs", body)

    # --- data rights: what partners posted under a member's customer refs, found by its purchases ---
    async def member_data_export(self, member: str, purchase_event_ids: list[str]) -> Json:
        return await self.get(f"/v1/members/{member}/data-export", purchase_event_id=purchase_event_ids)  # type: ignore[arg-type]


class RedemptionApi(OpsReads):
    async def catalog(self, **query: str | int | None) -> Json:
        return await self.get("/v1/catalog", **query)

    # --- data rights: a member's orders and vouchers ---
    async def member_data_export(self, member: str = "me") -> Json:
        return await self.get(f"/v1/members/{member}/data-export")

    async def catalog_offer(self, partner_id: str, offer_id: str) -> Json:
        return await self.get(f"/v1/catalog/{partner_id}/{offer_id}")

    async def place_order(self, body: Body) -> Json:
        return await self.post("/v1/orders", body)

    async def order(self, order_id: str) -> Json:
        return await self.get(f"/v1/orders/{order_id}")

    async def orders(self, **query: str | int | None) -> Json:
        """A member's own; ops name `member_id`; partner staff and ops name `partner_id` (and `state`)."""
        return await self.get("/v1/orders", **query)

    async def fulfilment_key(self, partner_id: str) -> Json:
        return await self.get(f"/v1/ops/fulfilment-keys/{partner_id}")

    async def issue_fulfilment_key(self, partner_id: str, body: Body | None = None) -> Json:
        return await self.post(f"/v1/ops/fulfilment-keys/{partner_id}", body)
