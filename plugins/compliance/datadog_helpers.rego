package datadog

# Helpers every Datadog compliance rule may use: build one finding per resource.

raw_finding(status, resource_type, resource_id, event_data) := f if {
	f := {"status": status, "resource_type": resource_type, "resource_id": resource_id, "data": event_data}
}

passed_finding(resource_type, resource_id, event_data) := raw_finding("passed", resource_type, resource_id, event_data)

failing_finding(resource_type, resource_id, event_data) := raw_finding("failing", resource_type, resource_id, event_data)

skipped_finding(resource_type, resource_id, error_msg) := raw_finding("skipped", resource_type, resource_id, {"error": error_msg})

error_finding(resource_type, resource_id, error_msg) := raw_finding("error", resource_type, resource_id, {"error": error_msg})
