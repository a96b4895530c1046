"""The iSOMS sign-in flow as a small Flask app: the reference integration for the backend team.

Run it with ``isoms-otp demo`` (or ``python -m isoms_otp.demo``); it needs the ``demo`` extra
(``pip install 'isoms-otp[demo]'``). :func:`isoms_otp.demo.app.create_app` builds the app. This
package imports Flask only in :mod:`isoms_otp.demo.app`, so importing it costs nothing.
"""
