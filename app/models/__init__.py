"""All models, imported here so Alembic and the app see the whole schema."""
from app.models.announcement import Announcement, AnnouncementStatus, Audience, Delivery, DeliveryStatus
from app.models.area import Community, District, Station
from app.models.billing import Bill, BillStatus, HeatingSeason, Payment, PaymentItem, PaymentState
from app.models.bridge import BridgeDeadLetter, BridgeEvent
from app.models.call import CallbackState, CallbackTask, CallLog, CallStatus
from app.models.chat import ChatSendStatus, Conversation, ConversationMessage, ConversationStatus, MessageDirection
from app.models.dashboard import DASHBOARD_INDEXES  # noqa: F401  (dashboard indexes, 0006)
from app.models.faq import FaqEntry
from app.models.follow_up import FollowUpReason, FollowUpState, FollowUpTask
from app.models.household import Household, HouseholdStatus
from app.models.intent import Intent, IntentMatch, IntentRule
from app.models.jobs_state import ArrearsReminder, OutageNotice, ReminderLevel, ReminderSent
from app.models.messages import InboundMessage, OutboundMessage
from app.models.outage import ClusterStatus, Outage, OutageArea, OutageCluster, OutageKind, OutageStatus
from app.models.outbox import OutboxMessage, OutboxStatus
from app.models.privacy import AccessAction, PersonalDataAccess
from app.models.reconciliation import MismatchKind, ReconciliationMismatch, ReconciliationRun
from app.models.refund import Refund, RefundState, surplus_refund_no
from app.models.session import ApiSession, StaffSession
from app.models.staff import Crew, CrewArea, Role, Staff
from app.models.ticket import (
    EvidenceRule, Priority, SlaPolicy, Ticket, TicketCategory, TicketCounter, TicketEvent, TicketPhoto, TicketSource,
    TicketState, TicketType,
)
from app.models.types import utcnow
from app.models.wechat_user import HouseholdBinding, StaffBindCode, SubscribeConsent, WechatUser

__all__ = [name for name in dir() if not name.startswith("_")]
