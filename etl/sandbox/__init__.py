"""Local HTTP sandboxes of the LeadGenius and HubSpot APIs, for tests, the demo and rehearsals."""
