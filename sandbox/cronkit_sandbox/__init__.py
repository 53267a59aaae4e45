"""cronkit-sandbox: the local Supabase-like sandbox (cluster, stand-ins, delivery worker, Edge Functions) and the demo."""
