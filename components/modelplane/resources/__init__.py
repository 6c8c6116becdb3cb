"""Pulumi components: the only modules that import Pulumi.

Each component takes the same typed args as the pure ``objects()`` functions and
registers what they return, one pulumi-kubernetes resource per object, so what Pulumi
applies is exactly what the GitOps render writes and the preview diffs.
"""
