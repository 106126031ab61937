from .distill_hook import DistillHook

__all__ = ['DistillHook']
