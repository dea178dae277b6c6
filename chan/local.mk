# chan: channels and select
