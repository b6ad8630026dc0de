"""Session folders on disk: layout, writing, generation and validation."""

from occworld_tokyo.sessions.generate import GenerationError, GenerationReport, GenerationSpec, generate_sessions
from occworld_tokyo.sessions.layout import find_sessions

__all__ = ["GenerationError", "GenerationReport", "GenerationSpec", "generate_sessions", "find_sessions"]
