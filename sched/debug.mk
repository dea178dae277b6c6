# sched/debug.mk: observability (monitor thread); owned by the debug work
